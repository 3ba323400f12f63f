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
  // Full checkpoints: a consistent copy of the journaled state (agentd.db, the plugins' own files and
  // directories) in a directory of its own beside the row; the journal of full restores; a fork's origin.
  `ALTER TABLE checkpoint_checkpoints ADD COLUMN scope TEXT NOT NULL DEFAULT 'state';
   ALTER TABLE checkpoint_checkpoints ADD COLUMN full_dir TEXT;
   ALTER TABLE checkpoint_checkpoints ADD COLUMN full_bytes INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE checkpoint_checkpoints ADD COLUMN manifest TEXT;
   CREATE TABLE checkpoint_restores (
     id            INTEGER PRIMARY KEY AUTOINCREMENT,
     checkpoint_id INTEGER NOT NULL,
     dir           TEXT NOT NULL,
     manifest      TEXT NOT NULL,
     phase         TEXT NOT NULL,
     started_at    REAL NOT NULL,
     updated_at    REAL NOT NULL,
     error         TEXT
   );
   CREATE TABLE checkpoint_origin (
     id            INTEGER PRIMARY KEY CHECK (id = 1),
     origin_home   TEXT NOT NULL,
     checkpoint_id INTEGER NOT NULL,
     label         TEXT,
     saved_at      REAL NOT NULL,
     forked_at     REAL NOT NULL
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
  /** `state`: the plugins' snapshots only; `full`: also a copy of the journaled state in `full_dir`. */
  scope: 'state' | 'full';
  full_dir: string | null;
  full_bytes: number;
}

/** A full checkpoint's files, as `insert` records them. */
export interface FullInput {
  dir: string;
  bytes: number;
  manifest: string;
}

/** A full restore in progress (the journal that makes a crash end in one state or the other). */
export interface RestoreJournal {
  id: number;
  checkpoint_id: number;
  dir: string;
  manifest: string;
  phase: 'stopping' | 'applying' | 'applied' | 'done' | 'abandoned';
  started_at: number;
  updated_at: number;
  error: string | null;
}

export interface Origin {
  origin_home: string;
  checkpoint_id: number;
  label: string | null;
  saved_at: number;
  forked_at: number;
}

export interface PartInput {
  plugin: string;
  version: number;
  json: string;
}

export interface InsertInput {
  parentId: number | null;
  label: string | null;
  reason: string;
  durationMs: number;
  parts: PartInput[];
  errors: Record<string, string>;
  keep: number;
  /** Present for a full checkpoint. */
  full?: FullInput;
  /** Full checkpoints retention removes in the same transaction (their directories go after it committed). */
  pruneFull?: number[];
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

interface RawRow extends Omit<CheckpointRow, 'plugins' | 'errors' | 'scope'> {
  scope: string;
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

const toRow = ({ manifest: _m, ...r }: RawRow & { manifest?: unknown }): CheckpointRow => ({
  ...r,
  scope: r.scope === 'full' ? 'full' : 'state',
  plugins: parseOr<string[]>(r.plugins, []),
  errors: parseOr<Record<string, string>>(r.errors, {}),
});

const COLUMNS =
  'id, parent_id, label, reason, created_at, duration_ms, size_bytes, plugins, errors, format, scope, full_dir, full_bytes';

export class CheckpointStore {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      insert:
        db.prepare(`INSERT INTO checkpoint_checkpoints (parent_id, label, reason, created_at, duration_ms, size_bytes, plugins, errors, format, scope, full_dir, full_bytes, manifest)
                          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      insertPart: db.prepare(
        'INSERT INTO checkpoint_parts (checkpoint_id, plugin, version, sha256, state) VALUES (?, ?, ?, ?, ?)',
      ),
      get: db.prepare(`SELECT ${COLUMNS} FROM checkpoint_checkpoints WHERE id = ?`),
      list: db.prepare(`SELECT ${COLUMNS} FROM checkpoint_checkpoints ORDER BY id DESC LIMIT ?`),
      listLabelled: db.prepare(
        `SELECT ${COLUMNS} FROM checkpoint_checkpoints WHERE label IS NOT NULL ORDER BY id DESC LIMIT ?`,
      ),
      listFull: db.prepare(`SELECT ${COLUMNS} FROM checkpoint_checkpoints WHERE scope = 'full' ORDER BY id DESC`),
      manifest: db.prepare('SELECT manifest FROM checkpoint_checkpoints WHERE id = ?'),
      fullDirs: db.prepare(
        "SELECT full_dir FROM checkpoint_checkpoints WHERE full_dir IS NOT NULL UNION SELECT dir FROM checkpoint_restores WHERE phase IN ('stopping', 'applying', 'applied')",
      ),
      counts: db.prepare(`SELECT COUNT(*) AS n, COUNT(label) AS labelled, COALESCE(SUM(size_bytes), 0) AS bytes,
                            COALESCE(SUM(scope = 'full'), 0) AS full, COALESCE(SUM(full_bytes), 0) AS full_bytes FROM checkpoint_checkpoints`),
      insertRestore: db.prepare(
        "INSERT INTO checkpoint_restores (checkpoint_id, dir, manifest, phase, started_at, updated_at) VALUES (?, ?, ?, 'stopping', ?, ?)",
      ),
      setPhase: db.prepare(
        'UPDATE checkpoint_restores SET phase = ?, updated_at = ?, error = COALESCE(?, error) WHERE id = ?',
      ),
      unfinished: db.prepare(
        "SELECT * FROM checkpoint_restores WHERE phase IN ('stopping', 'applying', 'applied') ORDER BY id",
      ),
      lastRestore: db.prepare('SELECT * FROM checkpoint_restores ORDER BY id DESC LIMIT 1'),
      pruneRestores: db.prepare(
        'DELETE FROM checkpoint_restores WHERE id NOT IN (SELECT id FROM checkpoint_restores ORDER BY id DESC LIMIT 100)',
      ),
      origin: db.prepare(
        'SELECT origin_home, checkpoint_id, label, saved_at, forked_at FROM checkpoint_origin WHERE id = 1',
      ),
      parts: db.prepare(
        'SELECT plugin, version, sha256, state FROM checkpoint_parts WHERE checkpoint_id = ? ORDER BY plugin',
      ),
      partIndex: db.prepare(
        'SELECT plugin, version, sha256 FROM checkpoint_parts WHERE checkpoint_id = ? ORDER BY plugin',
      ),
      part: db.prepare(
        'SELECT plugin, version, sha256, state FROM checkpoint_parts WHERE checkpoint_id = ? AND plugin = ?',
      ),
      stored: db.prepare('SELECT DISTINCT plugin FROM checkpoint_parts'),
      // Retention: everything unlabelled beyond the newest `keep` goes; labelled ones stay until deleted.
      // Full checkpoints have retention of their own (count and bytes), applied by the full-checkpoint code.
      prune: db.prepare(`DELETE FROM checkpoint_checkpoints WHERE label IS NULL AND scope = 'state' AND id NOT IN
                           (SELECT id FROM checkpoint_checkpoints WHERE label IS NULL AND scope = 'state' ORDER BY id DESC LIMIT ?)`),
      pruneParts: db.prepare(
        'DELETE FROM checkpoint_parts WHERE checkpoint_id NOT IN (SELECT id FROM checkpoint_checkpoints)',
      ),
      delete: db.prepare('DELETE FROM checkpoint_checkpoints WHERE id = ?'),
      deleteParts: db.prepare('DELETE FROM checkpoint_parts WHERE checkpoint_id = ?'),
      insertBoot: db.prepare(
        'INSERT INTO checkpoint_boots (pid, started_at, head_id, restored, skipped, corrupt) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      getBoot: db.prepare('SELECT * FROM checkpoint_boots WHERE id = ?'),
      pruneBoots: db.prepare(
        'DELETE FROM checkpoint_boots WHERE id NOT IN (SELECT id FROM checkpoint_boots ORDER BY id DESC LIMIT 100)',
      ),
    };
  }

  /**
   * Write one checkpoint and apply retention, in one transaction. Returns the new row and how many
   * old checkpoints retention removed.
   */
  insert(c: InsertInput): { row: CheckpointRow; pruned: number } {
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

  private write(
    c: InsertInput,
    hashed: Array<PartInput & { sha: string }>,
    size: number,
    plugins: string[],
  ): { row: CheckpointRow; pruned: number } {
    return this.db
      .transaction(() => {
        const createdAt = Date.now() / 1000;
        const scope = c.full ? 'full' : 'state';
        const id = Number(
          this.stmts.insert.run(
            c.parentId,
            c.label,
            c.reason,
            createdAt,
            c.durationMs,
            size,
            JSON.stringify(plugins),
            JSON.stringify(c.errors),
            FORMAT,
            scope,
            c.full?.dir ?? null,
            c.full?.bytes ?? 0,
            c.full?.manifest ?? null,
          ).lastInsertRowid,
        );
        for (const p of hashed) this.stmts.insertPart.run(id, p.plugin, p.version, p.sha, p.json);
        let pruned = this.stmts.prune.run(c.keep).changes;
        for (const old of c.pruneFull ?? []) pruned += this.stmts.delete.run(old).changes;
        if (pruned > 0) this.stmts.pruneParts.run();
        const row: CheckpointRow = {
          id,
          parent_id: c.parentId,
          label: c.label,
          reason: c.reason,
          created_at: createdAt,
          duration_ms: c.durationMs,
          size_bytes: size,
          plugins,
          errors: c.errors,
          format: FORMAT,
          scope,
          full_dir: c.full?.dir ?? null,
          full_bytes: c.full?.bytes ?? 0,
        };
        return { row, pruned };
      })
      .immediate();
  }

  /** Full checkpoints, newest first. */
  listFull(): CheckpointRow[] {
    return (this.stmts.listFull.all() as RawRow[]).map(toRow);
  }

  manifest(id: number): string | null {
    return (this.stmts.manifest.get(id) as { manifest: string | null } | undefined)?.manifest ?? null;
  }

  /** Directories a row or an unfinished restore still needs (anything else under full/ is a leftover). */
  fullDirsInUse(): Set<string> {
    return new Set((this.stmts.fullDirs.all() as Array<{ full_dir: string }>).map((r) => r.full_dir));
  }

  beginRestore(checkpointId: number, dir: string, manifest: string): number {
    return this.durably(() =>
      Number(
        this.stmts.insertRestore.run(checkpointId, dir, manifest, Date.now() / 1000, Date.now() / 1000).lastInsertRowid,
      ),
    );
  }

  setPhase(id: number, phase: RestoreJournal['phase'], error: string | null = null): void {
    this.durably(() => {
      this.stmts.setPhase.run(phase, Date.now() / 1000, error, id);
      if (phase === 'done' || phase === 'abandoned') this.stmts.pruneRestores.run();
    });
  }

  unfinishedRestores(): RestoreJournal[] {
    return this.stmts.unfinished.all() as RestoreJournal[];
  }

  lastRestore(): RestoreJournal | undefined {
    return this.stmts.lastRestore.get() as RestoreJournal | undefined;
  }

  origin(): Origin | undefined {
    return this.stmts.origin.get() as Origin | undefined;
  }

  /** One transaction committed with synchronous=FULL whatever the connection is set to. */
  private durably<T>(fn: () => T): T {
    const prev = this.db.pragma('synchronous', { simple: true }) as number;
    if (prev < 2) this.db.pragma('synchronous = FULL');
    try {
      return this.db.transaction(fn).immediate();
    } finally {
      if (prev < 2) this.db.pragma(`synchronous = ${prev}`);
    }
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

  counts(): { n: number; labelled: number; bytes: number; full: number; full_bytes: number } {
    return this.stmts.counts.get() as { n: number; labelled: number; bytes: number; full: number; full_bytes: number };
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
      const id = Number(
        this.stmts.insertBoot.run(
          b.pid,
          b.started_at,
          b.head_id,
          JSON.stringify(b.restored),
          JSON.stringify(b.skipped),
          JSON.stringify(b.corrupt),
        ).lastInsertRowid,
      );
      this.stmts.pruneBoots.run();
      return id;
    })();
  }

  boot(id: number): BootRecord | undefined {
    const r = this.stmts.getBoot.get(id) as
      | (Omit<BootRecord, 'restored' | 'skipped' | 'corrupt'> & { restored: string; skipped: string; corrupt: string })
      | undefined;
    if (!r) return undefined;
    return {
      ...r,
      restored: parseOr(r.restored, {}),
      skipped: parseOr(r.skipped, []),
      corrupt: parseOr(r.corrupt, []),
    };
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
