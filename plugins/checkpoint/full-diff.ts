/**
 * What differs between two states (two full checkpoints, or one and the live daemon): for each kind
 * of thing a plugin declared (agents, nodes, edges, runs…), the keys added, removed and changed,
 * computed by SQLite over the two files side by side (set operations on keys and whole rows), so it
 * costs a scan of each table, not a load into memory.
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';
import type { FullStateEntity } from '../../daemon/plugin-api.js';
import { ident } from './full-files.js';

/** One side of a diff: agentd.db and the plugins' files, keyed `<plugin>/<name>` (null: absent). */
export interface DiffSide {
  db: string | null;
  files: Record<string, string | null>;
}

export interface EntityDiff {
  plugin: string;
  added: number;
  removed: number;
  changed: number;
  ids: { added: unknown[]; removed: unknown[]; changed: unknown[] };
  /** Some lists hold fewer ids than their count (see `limit`). */
  truncated: boolean;
}

export type EntityOutcome = EntityDiff | { plugin: string; unavailable: string };

const fileOf = (side: DiffSide, plugin: string, e: FullStateEntity): string | null => (e.file ? side.files[`${plugin}/${e.file}`] ?? null : side.db);

const columnsOf = (db: Database.Database, schema: string, table: string): string[] =>
  (db.prepare(`SELECT name FROM pragma_table_info(?, ?)`).all(table, schema) as Array<{ name: string }>).map((c) => c.name);

export function diffEntity(from: DiffSide, to: DiffSide, plugin: string, e: FullStateEntity, limit: number): EntityOutcome {
  const a = fileOf(from, plugin, e);
  const b = fileOf(to, plugin, e);
  if (!a || !b || !fs.existsSync(a) || !fs.existsSync(b)) return { plugin, unavailable: `no ${e.file ?? 'database'} file on ${!a || !fs.existsSync(a) ? 'the from' : 'the to'} side` };
  const db = new Database(a, { readonly: true, fileMustExist: true });
  try {
    db.prepare('ATTACH DATABASE ? AS b').run(b);
    const colsA = columnsOf(db, 'main', e.table);
    const colsB = new Set(columnsOf(db, 'b', e.table));
    if (colsA.length === 0 || colsB.size === 0) return { plugin, unavailable: `table ${e.table} is missing on the ${colsA.length === 0 ? 'from' : 'to'} side` };
    const names = typeof e.key === 'string' ? null : Object.keys(e.key);
    const keyCols = typeof e.key === 'string' ? [e.key] : Object.values(e.key);
    // Rows are compared on the columns both sides have (a migration may have added some in between).
    const common = colsA.filter((c) => colsB.has(c)).map(ident).join(', ');
    const k = keyCols.map(ident).join(', ');
    const T = ident(e.table);
    const sets = {
      added: `SELECT ${k} FROM b.${T} EXCEPT SELECT ${k} FROM main.${T}`,
      removed: `SELECT ${k} FROM main.${T} EXCEPT SELECT ${k} FROM b.${T}`,
      changed: `SELECT ${k} FROM (SELECT ${common} FROM b.${T} EXCEPT SELECT ${common} FROM main.${T}) INTERSECT SELECT ${k} FROM main.${T}`,
    };
    const order = keyCols.map((_, i) => String(i + 1)).join(', ');
    const out: EntityDiff = { plugin, added: 0, removed: 0, changed: 0, ids: { added: [], removed: [], changed: [] }, truncated: false };
    for (const [what, sql] of Object.entries(sets) as Array<[keyof typeof sets, string]>) {
      out[what] = (db.prepare(`SELECT count(*) AS n FROM (${sql})`).get() as { n: number }).n;
      if (limit > 0 && out[what] > 0) {
        const rows = db.prepare(`${sql} ORDER BY ${order} LIMIT ?`).raw().all(limit) as unknown[][];
        out.ids[what] = rows.map((r) => (names ? Object.fromEntries(names.map((n, i) => [n, r[i]])) : r[0]));
      }
      if (out.ids[what].length < out[what]) out.truncated = true;
    }
    return out;
  } finally {
    db.close();
  }
}

/** Every entity either side declares, compared. */
export function diffStates(from: DiffSide, to: DiffSide, entities: Record<string, { plugin: string; entity: FullStateEntity }>, limit: number): Record<string, EntityOutcome> {
  const out: Record<string, EntityOutcome> = {};
  for (const [name, { plugin, entity }] of Object.entries(entities)) {
    try {
      out[name] = diffEntity(from, to, plugin, entity, limit);
    } catch (e) {
      out[name] = { plugin, unavailable: (e as Error).message };
    }
  }
  return out;
}
