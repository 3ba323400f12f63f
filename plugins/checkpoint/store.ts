/**
 * The checkpoint store: tables `checkpoint_*` in the shared agentd.db (WAL, synchronous=FULL, set by
 * the kernel). A checkpoint is one row plus one part per plugin, written in one transaction together
 * with retention, so a crash leaves either the whole checkpoint or none of it. Each part carries the
 * SHA-256 of its JSON so a damaged part is recognised at restore instead of being handed to a plugin.
 */
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';

/** Bumped when the stored layout changes incompatibly; a checkpoint of another format is skipped. */
export const FORMAT = 1;

export const MIGRATIONS: string[] = [
  `CREATE TABLE checkpoint_checkpoints (
     id          INTEGER PRIMARY KEY AUTOINCREMENT,
     parent_id   INTEGER,
     label       TEXT,
     reason      TEXT NOT NULL,
     created_at  REAL NOT NULL,
     duration_ms REAL NOT NULL,
     size_bytes  INTEGER NOT NULL,
     plugins     TEXT NOT NULL,
     errors      TEXT NOT NULL,
     format      INTEGER NOT NULL
   );
   CREATE INDEX checkpoint_checkpoints_label ON checkpoint_checkpoints(label) WHERE label IS NOT NULL;
   CREATE TABLE checkpoint_parts (
     checkpoint_id INTEGER NOT NULL REFERENCES checkpoint_checkpoints(id) ON DELETE CASCADE,
     plugin        TEXT NOT NULL,
     version       INTEGER NOT NULL,
     sha256        TEXT NOT NULL,
     state         TEXT NOT NULL,
     PRIMARY KEY (checkpoint_id, plugin)
   );
   CREATE TABLE checkpoint_boots (
     id          INTEGER PRIMARY KEY AUTOINCREMENT,
     pid         INTEGER NOT NULL,
     started_at  REAL NOT NULL,
     head_id     INTEGER,
     restored    TEXT NOT NULL,
     skipped     TEXT NOT NULL,
     corrupt     TEXT NOT NULL
   );`,
];

export interface CheckpointRow {
  id: number;
  parent_id: number | null;
  label: string | null;
  reason: string;
  created_at: number;
  duration_ms: number;
  size_bytes: number;
  plugins: string[];
  errors: Record<string, string>;
  format: number;
}

export interface PartInput {
  plugin: string;
  version: number;
  json: string;
}

export interface StoredPart {
  plugin: string;
  version: number;
  sha256: string;
  state: string;
}

export interface BootRecord {
  id: number;
  pid: number;
  started_at: number;
  head_id: number | null;
  restored: Record<string, number>;
  skipped: Array<{ checkpoint_id: number; plugin: string; reason: string }>;
  corrupt: Array<{ checkpoint_id: number; plugin: string | null; reason: string }>;
}

interface RawRow extends Omit<CheckpointRow, 'plugins' | 'errors'> {
  plugins: string;
  errors: string;
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Parse a JSON column written by us; a damaged one reads as the fallback instead of throwing. */
function parseOr<T>(text: string, fallback: T): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

const toRow = (r: RawRow): CheckpointRow => ({ ...r, plugins: parseOr<string[]>(r.plugins, []), errors: parseOr<Record<string, string>>(r.errors, {}) });

export class CheckpointStore {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      insert: db.prepare(`INSERT INTO checkpoint_checkpoints (parent_id, label, reason, created_at, duration_ms, size_bytes, plugins, errors, format)
                          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      insertPart: db.prepare('INSERT INTO checkpoint_parts (checkpoint_id, plugin, version, sha256, state) VALUES (?, ?, ?, ?, ?)'),
      get: db.prepare('SELECT * FROM checkpoint_checkpoints WHERE id = ?'),
      list: db.prepare('SELECT * FROM checkpoint_checkpoints ORDER BY id DESC LIMIT ?'),
      listLabelled: db.prepare('SELECT * FROM checkpoint_checkpoints WHERE label IS NOT NULL ORDER BY id DESC LIMIT ?'),
      counts: db.prepare('SELECT COUNT(*) AS n, COUNT(label) AS labelled, COALESCE(SUM(size_bytes), 0) AS bytes FROM checkpoint_checkpoints'),
      parts: db.prepare('SELECT plugin, version, sha256, state FROM checkpoint_parts WHERE checkpoint_id = ? ORDER BY plugin'),
      partIndex: db.prepare('SELECT plugin, version, sha256 FROM checkpoint_parts WHERE checkpoint_id = ? ORDER BY plugin'),
      part: db.prepare('SELECT plugin, version, sha256, state FROM checkpoint_parts WHERE checkpoint_id = ? AND plugin = ?'),
      stored: db.prepare('SELECT DISTINCT plugin FROM checkpoint_parts'),
      // Retention: everything unlabelled beyond the newest `keep` goes; labelled ones stay until deleted.
      prune: db.prepare(`DELETE FROM checkpoint_checkpoints WHERE label IS NULL AND id NOT IN
                           (SELECT id FROM checkpoint_checkpoints WHERE label IS NULL ORDER BY id DESC LIMIT ?)`),
      pruneParts: db.prepare('DELETE FROM checkpoint_parts WHERE checkpoint_id NOT IN (SELECT id FROM checkpoint_checkpoints)'),
      delete: db.prepare('DELETE FROM checkpoint_checkpoints WHERE id = ?'),
      deleteParts: db.prepare('DELETE FROM checkpoint_parts WHERE checkpoint_id = ?'),
      insertBoot: db.prepare('INSERT INTO checkpoint_boots (pid, started_at, head_id, restored, skipped, corrupt) VALUES (?, ?, ?, ?, ?, ?)'),
      getBoot: db.prepare('SELECT * FROM checkpoint_boots WHERE id = ?'),
      pruneBoots: db.prepare('DELETE FROM checkpoint_boots WHERE id NOT IN (SELECT id FROM checkpoint_boots ORDER BY id DESC LIMIT 100)'),
    };
  }

  /**
   * Write one checkpoint and apply retention, in one transaction. Returns the new row and how many
   * old checkpoints retention removed.
   */
  insert(c: { parentId: number | null; label: string | null; reason: string; durationMs: number; parts: PartInput[]; errors: Record<string, string>; keep: number }): { row: CheckpointRow; pruned: number } {
    const size = c.parts.reduce((n, p) => n + Buffer.byteLength(p.json), 0);
    const plugins = c.parts.map((p) => p.plugin);
    const hashed = c.parts.map((p) => ({ ...p, sha: sha256(p.json) }));
    // An acknowledged checkpoint must survive power loss: FULL for this commit whatever the connection is set to.
    const prev = this.db.pragma('synchronous', { simple: true }) as number;
    if (prev < 2) this.db.pragma('synchronous = FULL');
    try {
      return this.write(c, hashed, size, plugins);
    } finally {
      if (prev < 2) this.db.pragma(`synchronous = ${prev}`);
    }
  }

  private write(c: { parentId: number | null; label: string | null; reason: string; durationMs: number; errors: Record<string, string>; keep: number }, hashed: Array<PartInput & { sha: string }>, size: number, plugins: string[]): { row: CheckpointRow; pruned: number } {
    return this.db.transaction(() => {
      const createdAt = Date.now() / 1000;
      const id = Number(this.stmts.insert.run(c.parentId, c.label, c.reason, createdAt, c.durationMs, size, JSON.stringify(plugins), JSON.stringify(c.errors), FORMAT).lastInsertRowid);
      for (const p of hashed) this.stmts.insertPart.run(id, p.plugin, p.version, p.sha, p.json);
      const pruned = this.stmts.prune.run(c.keep).changes;
      if (pruned > 0) this.stmts.pruneParts.run();
      const row: CheckpointRow = { id, parent_id: c.parentId, label: c.label, reason: c.reason, created_at: createdAt, duration_ms: c.durationMs, size_bytes: size, plugins, errors: c.errors, format: FORMAT };
      return { row, pruned };
    }).immediate();
  }

  /** Delete one checkpoint and its parts; false when there was none. */
  delete(id: number): boolean {
    return this.db.transaction(() => {
      this.stmts.deleteParts.run(id);
      return this.stmts.delete.run(id).changes > 0;
    })();
  }

  get(id: number): CheckpointRow | undefined {
    const r = this.stmts.get.get(id) as RawRow | undefined;
    return r && toRow(r);
  }

  /** Newest first. */
  list(limit: number, labelledOnly = false): CheckpointRow[] {
    return ((labelledOnly ? this.stmts.listLabelled : this.stmts.list).all(limit) as RawRow[]).map(toRow);
  }

  counts(): { n: number; labelled: number; bytes: number } {
    return this.stmts.counts.get() as { n: number; labelled: number; bytes: number };
  }

  parts(id: number): StoredPart[] {
    return this.stmts.parts.all(id) as StoredPart[];
  }

  /** A checkpoint's parts without their state (cheap). */
  partIndex(id: number): Array<Omit<StoredPart, 'state'>> {
    return this.stmts.partIndex.all(id) as Array<Omit<StoredPart, 'state'>>;
  }

  part(id: number, plugin: string): StoredPart | undefined {
    return this.stmts.part.get(id, plugin) as StoredPart | undefined;
  }

  /** Every plugin that has a part in some retained checkpoint. */
  pluginsStored(): string[] {
    return (this.stmts.stored.all() as Array<{ plugin: string }>).map((r) => r.plugin);
  }

  recordBoot(b: Omit<BootRecord, 'id'>): number {
    return this.db.transaction(() => {
      const id = Number(this.stmts.insertBoot.run(b.pid, b.started_at, b.head_id, JSON.stringify(b.restored), JSON.stringify(b.skipped), JSON.stringify(b.corrupt)).lastInsertRowid);
      this.stmts.pruneBoots.run();
      return id;
    })();
  }

  boot(id: number): BootRecord | undefined {
    const r = this.stmts.getBoot.get(id) as (Omit<BootRecord, 'restored' | 'skipped' | 'corrupt'> & { restored: string; skipped: string; corrupt: string }) | undefined;
    if (!r) return undefined;
    return { ...r, restored: parseOr(r.restored, {}), skipped: parseOr(r.skipped, []), corrupt: parseOr(r.corrupt, []) };
  }
}

/** Check a stored part before it is handed to a plugin: hash, then JSON. Returns the state or why it is unusable. */
export function verifyPart(p: StoredPart): { ok: true; state: unknown } | { ok: false; reason: string } {
  if (typeof p.state !== 'string') return { ok: false, reason: 'state is not text' };
  if (sha256(p.state) !== p.sha256) return { ok: false, reason: 'checksum mismatch (the stored state is damaged)' };
  try {
    return { ok: true, state: JSON.parse(p.state) };
  } catch (e) {
    return { ok: false, reason: `state is not valid JSON: ${(e as Error).message}` };
  }
}
