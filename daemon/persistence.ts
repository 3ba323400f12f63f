/**
 * The shared SQLite database (var/db/agentd.db): WAL for concurrent readers, synchronous=FULL
 * because journals and checkpoints written here are promises that survive power loss.
 * Each plugin migrates its own tables; versions are tracked per plugin.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export type Migration = string | ((db: Database.Database) => void);

/** The database cannot be opened or read; the message says which file, why, and what to do. */
export class DatabaseOpenError extends Error {}

/** What to tell an operator about a database that SQLite refused, by SQLite's error code. */
export function describeDatabaseError(file: string, e: unknown): string {
  const code = String((e as { code?: unknown })?.code ?? '');
  const why = (e as Error)?.message ?? String(e);
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return `the database ${file} is damaged (${why}); agentd cannot start on it. Move it aside (mv ${file} ${file}.damaged, with its -wal and -shm files) to start with an empty one, or put back a copy from a backup`;
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_READONLY')) {
    return `the database ${file} cannot be opened for writing (${why}); check that it and its directory belong to the user agentd runs as`;
  }
  return `the database ${file} could not be opened: ${why}`;
}

export function openDatabase(dbDir: string, file = 'agentd.db'): Database.Database {
  fs.mkdirSync(dbDir, { recursive: true, mode: 0o700 });
  const full = path.join(dbDir, file);
  let db: Database.Database | undefined;
  try {
    db = new Database(full);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    db.exec(`CREATE TABLE IF NOT EXISTS kernel_migrations (
      plugin TEXT NOT NULL, version INTEGER NOT NULL, applied_at REAL NOT NULL,
      PRIMARY KEY (plugin, version))`);
    return db;
  } catch (e) {
    db?.close();
    throw new DatabaseOpenError(describeDatabaseError(full, e), { cause: e });
  }
}

/**
 * Apply `migrations[i]` as version i+1 for `plugin`, each at most once. All that are pending go in one
 * transaction: a schema is either brought fully up to date or left as it was, with one disk sync
 * (a fresh home would otherwise pay one per migration of every plugin at its first start).
 */
export function migrate(db: Database.Database, plugin: string, migrations: Migration[]): number {
  const row = db.prepare('SELECT MAX(version) AS v FROM kernel_migrations WHERE plugin = ?').get(plugin) as {
    v: number | null;
  };
  const current = row.v ?? 0;
  if (current > migrations.length) {
    throw new Error(
      `database has ${plugin} schema version ${current}, newer than this code knows (${migrations.length})`,
    );
  }
  if (current === migrations.length) return migrations.length;
  const record = db.prepare('INSERT INTO kernel_migrations (plugin, version, applied_at) VALUES (?, ?, ?)');
  db.transaction(() => {
    for (let v = current + 1; v <= migrations.length; v++) {
      const m = migrations[v - 1];
      try {
        if (typeof m === 'string') db.exec(m);
        else m(db);
      } catch (e) {
        throw new Error(`${plugin} migration ${v} failed: ${(e as Error).message}`, { cause: e });
      }
      record.run(plugin, v, Date.now() / 1000);
    }
  })();
  return migrations.length;
}

/**
 * Give `table` a new definition, keeping its rows: SQLite cannot change a table's key, its storage or
 * AUTOINCREMENT in place. The new table (`definition` is what follows the name: columns, constraints,
 * options) is created under a temporary name, every column the two share is copied, and it replaces
 * the old one. The old table's indexes go with it; the caller creates the ones the new table needs.
 * Meant for migrations, inside their transaction.
 */
export function rebuildTable(db: Database.Database, table: string, definition: string): void {
  const next = `${table}_rebuilt`;
  db.exec(`CREATE TABLE ${next} ${definition}`);
  const columnsOf = (t: string): string[] =>
    (db.pragma(`table_info(${t})`) as Array<{ name: string }>).map((c) => c.name);
  const old = new Set(columnsOf(table));
  const shared = columnsOf(next)
    .filter((c) => old.has(c))
    .join(', ');
  db.exec(`INSERT INTO ${next} (${shared}) SELECT ${shared} FROM ${table}`);
  db.exec(`DROP TABLE ${table}`);
  db.exec(`ALTER TABLE ${next} RENAME TO ${table}`);
}
