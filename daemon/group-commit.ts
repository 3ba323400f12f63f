/**
 * Group commit for a synchronous=FULL SQLite connection. Every durable write costs an fsync (0.3-1 ms
 * here); run one per operation and 50 concurrent calls queue behind each other's disk flushes. Instead,
 * operations arriving in the same event-loop turn share one transaction and one fsync, each inside its
 * own savepoint so one failing operation rolls back only itself. A caller's promise settles only after
 * the shared commit returned, so "acknowledged" still means "on disk".
 *
 * Part of the kernel's persistence layer: every plugin journaling into the shared agentd.db uses it.
 */
import type Database from 'better-sqlite3';

interface Pending {
  op: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;
  /** Number of commits and operations, for health and benchmarks. */
  readonly stats = { commits: 0, ops: 0 };

  constructor(private readonly db: Database.Database) {}

  /** Run `op` (synchronous, using the db) in the next shared transaction; resolves once durable. */
  run<T>(op: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commit what is pending now (used at stop so nothing waits on a timer that will not fire). */
  flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const outcomes: Array<{ ok: true; v: unknown } | { ok: false; e: unknown }> = [];
    try {
      this.db.transaction(() => {
        for (const p of batch) {
          try {
            outcomes.push({ ok: true, v: this.db.transaction(p.op)() });
          } catch (e) {
            outcomes.push({ ok: false, e });
          }
        }
      })();
    } catch (e) {
      for (const p of batch) p.reject(e);
      return;
    }
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
 * writes whose loss on power failure is harmless: in WAL mode the next FULL commit on the connection
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
