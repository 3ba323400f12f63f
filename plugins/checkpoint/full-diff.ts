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

const fileOf = (side: DiffSide, plugin: string, e: FullStateEntity): string | null =>
  e.file ? (side.files[`${plugin}/${e.file}`] ?? null) : side.db;

const columnsOf = (db: Database.Database, schema: string, table: string): string[] =>
  (db.prepare(`SELECT name FROM pragma_table_info(?, ?)`).all(table, schema) as Array<{ name: string }>).map(
    (c) => c.name,
  );

/**
 * Keys present on one side only (an index probe per row: the key is the table's primary key) and rows
 * with the same key whose columns differ (a join on the key), each walked once in key order: the
 * count is exact, the first `limit` keys are kept.
 */
export function diffEntity(
  from: DiffSide,
  to: DiffSide,
  plugin: string,
  e: FullStateEntity,
  limit: number,
): EntityOutcome {
  const a = fileOf(from, plugin, e);
  const b = fileOf(to, plugin, e);
  if (!a || !b || !fs.existsSync(a) || !fs.existsSync(b))
    return {
      plugin,
      unavailable: `no ${e.file ?? 'database'} file on ${!a || !fs.existsSync(a) ? 'the from' : 'the to'} side`,
    };
  const db = new Database(a, { readonly: true, fileMustExist: true });
  try {
    db.prepare('ATTACH DATABASE ? AS b').run(b);
    const colsA = columnsOf(db, 'main', e.table);
    const colsB = new Set(columnsOf(db, 'b', e.table));
    if (colsA.length === 0 || colsB.size === 0)
      return { plugin, unavailable: `table ${e.table} is missing on the ${colsA.length === 0 ? 'from' : 'to'} side` };
    const names = typeof e.key === 'string' ? null : Object.keys(e.key);
    const keyCols = typeof e.key === 'string' ? [e.key] : Object.values(e.key);
    const on = keyCols.map((c) => `x.${ident(c)} = y.${ident(c)}`).join(' AND ');
    const keys = keyCols.map((c) => `x.${ident(c)}`).join(', ');
    // Rows are compared on the columns both sides have (a migration may have added some in between).
    const differs =
      colsA
        .filter((c) => colsB.has(c) && !keyCols.includes(c))
        .map((c) => `x.${ident(c)} IS NOT y.${ident(c)}`)
        .join(' OR ') || '0';
    const T = ident(e.table);
    const sets = {
      added: `SELECT ${keys} FROM b.${T} x WHERE NOT EXISTS (SELECT 1 FROM main.${T} y WHERE ${on}) ORDER BY ${keys}`,
      removed: `SELECT ${keys} FROM main.${T} x WHERE NOT EXISTS (SELECT 1 FROM b.${T} y WHERE ${on}) ORDER BY ${keys}`,
      changed: `SELECT ${keys} FROM b.${T} x JOIN main.${T} y ON ${on} WHERE ${differs} ORDER BY ${keys}`,
    };
    const out: EntityDiff = {
      plugin,
      added: 0,
      removed: 0,
      changed: 0,
      ids: { added: [], removed: [], changed: [] },
      truncated: false,
    };
    for (const [what, sql] of Object.entries(sets) as Array<[keyof typeof sets, string]>) {
      for (const r of db.prepare(sql).raw().iterate() as IterableIterator<unknown[]>) {
        if (out[what]++ < limit) out.ids[what].push(names ? Object.fromEntries(names.map((n, i) => [n, r[i]])) : r[0]);
      }
      if (out.ids[what].length < out[what]) out.truncated = true;
    }
    return out;
  } finally {
    db.close();
  }
}

/** Every entity either side declares, compared, with a turn of the event loop between two. */
export async function diffStates(
  from: DiffSide,
  to: DiffSide,
  entities: Record<string, { plugin: string; entity: FullStateEntity }>,
  limit: number,
): Promise<Record<string, EntityOutcome>> {
  const out: Record<string, EntityOutcome> = {};
  for (const [name, { plugin, entity }] of Object.entries(entities)) {
    try {
      out[name] = diffEntity(from, to, plugin, entity, limit);
    } catch (e) {
      out[name] = { plugin, unavailable: (e as Error).message };
    }
    await new Promise((r) => setImmediate(r));
  }
  return out;
}
