/**
 * The kernel's side of full checkpoints: what each plugin declared in `fullState` (its tables expanded
 * against agentd.db, its files and directories resolved on its running instance), and the calls into
 * a plugin's `external` hooks. The checkpoint plugin reaches these through the internal
 * `plugin:full_state` event; it never needs to know any plugin by name.
 */
import type Database from 'better-sqlite3';
import { DaemonError } from '../client/errors.js';
import type { FullStateEntity, FullStateSpec, PluginContext } from './plugin-api.js';
import type { PluginHost, PluginRecord } from './plugin-host.js';

/** One plugin's declaration, resolved now. */
export interface FullStatePlugin {
  running: boolean;
  status: string;
  /** Tables a full restore puts back (those that exist now). */
  tables: string[];
  /** Tables never rolled back. */
  kept: string[];
  kept_reason: string | null;
  files: Record<string, string>;
  dirs: Record<string, string>;
  entities: Record<string, FullStateEntity>;
  external: boolean;
  /** The plugin's schema version in kernel_migrations (null: it migrates no agentd.db tables). */
  schema_version: number | null;
}

export interface FullStateDescription {
  plugins: Record<string, FullStatePlugin>;
  /** Plugins with tables in agentd.db (named `<plugin>_…`) that declare no full state: copied, never rolled back. */
  undeclared: Record<string, string[]>;
}

const serving = (rec: PluginRecord): boolean => rec.started && ['ok', 'degraded'].includes(rec.status);

/** `agent_*` matches by prefix; anything else is a table name. */
function expand(patterns: string[], tables: string[]): string[] {
  const out = new Set<string>();
  for (const p of patterns) {
    if (p.endsWith('*')) {
      for (const t of tables) if (t.startsWith(p.slice(0, -1))) out.add(t);
    } else if (tables.includes(p)) out.add(p);
  }
  return [...out].sort();
}

export function describeFullState(host: PluginHost, db: Database.Database): FullStateDescription {
  // Ordinary tables only: a virtual table (full-text search) is kept up to date by its own triggers
  // from the tables it indexes, and its shadow tables are its private storage.
  const tables = (
    db
      .prepare(
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%'",
      )
      .all() as Array<{ name: string }>
  ).map((r) => r.name);
  const version = db.prepare('SELECT MAX(version) AS v FROM kernel_migrations WHERE plugin = ?');
  const plugins: Record<string, FullStatePlugin> = {};
  const undeclared: Record<string, string[]> = {};
  for (const rec of host.records.values()) {
    const spec = rec.def?.fullState as FullStateSpec | undefined;
    if (!spec) {
      const own = tables.filter((t) => t.startsWith(`${rec.name}_`));
      if (own.length && rec.name !== 'checkpoint') undeclared[rec.name] = own;
      continue;
    }
    const running = serving(rec);
    const ctx = rec.ctx as PluginContext | null;
    const kept = expand(spec.kept?.tables ?? [], tables);
    plugins[rec.name] = {
      running,
      status: rec.status,
      tables: expand(spec.tables ?? [], tables).filter((t) => !kept.includes(t)),
      kept,
      kept_reason: spec.kept?.reason ?? null,
      files: running && spec.files && ctx ? spec.files(rec.instance, ctx) : {},
      dirs: running && spec.dirs && ctx ? spec.dirs(rec.instance, ctx) : {},
      entities: spec.entities ?? {},
      external: Boolean(spec.external),
      schema_version: (version.get(rec.name) as { v: number | null }).v,
    };
  }
  return { plugins, undeclared };
}

function externalOf(
  host: PluginHost,
  name: string,
): { rec: PluginRecord; ext: NonNullable<FullStateSpec['external']> } {
  const rec = host.records.get(name);
  const ext = (rec?.def?.fullState as FullStateSpec | undefined)?.external;
  if (!rec || !ext) throw new DaemonError('NOT_FOUND', `plugin ${name} keeps no external state`, { plugin: name });
  if (!serving(rec)) throw new DaemonError('UNAVAILABLE', `plugin ${name} is not running`, { plugin: name });
  return { rec, ext };
}

/** Freeze every running plugin that keeps external state; answers those that did (to thaw later). */
export async function freezeExternal(host: PluginHost): Promise<string[]> {
  const frozen: string[] = [];
  try {
    for (const rec of host.records.values()) {
      const ext = (rec.def?.fullState as FullStateSpec | undefined)?.external;
      if (ext && serving(rec) && (await ext.freeze(rec.instance))) frozen.push(rec.name);
    }
  } catch (e) {
    thawExternal(host, frozen);
    throw e;
  }
  return frozen;
}

export function thawExternal(host: PluginHost, names: string[]): void {
  for (const name of names) {
    const rec = host.records.get(name);
    const ext = (rec?.def?.fullState as FullStateSpec | undefined)?.external;
    try {
      if (rec && ext) ext.thaw(rec.instance);
    } catch {
      /* a plugin that cannot thaw has stopped; nothing is held for it any more */
    }
  }
}

export function captureExternal(host: PluginHost, name: string, dir: string): Promise<Record<string, string>> {
  const { rec, ext } = externalOf(host, name);
  return ext.capture(rec.instance, dir);
}

export function putBackExternal(host: PluginHost, name: string, dir: string): Promise<void> {
  const { rec, ext } = externalOf(host, name);
  return ext.putBack(rec.instance, dir);
}
