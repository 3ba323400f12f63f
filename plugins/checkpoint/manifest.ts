/**
 * A full checkpoint's manifest: what was copied, from where, and what each plugin declared at the
 * save. It travels with the copy (in the checkpoint row and in the restore journal), so a restore, a
 * diff, a fork and the roll-forward after a crash read what was saved, not what plugins say today.
 */
import path from 'node:path';
import type { FullStateEntity } from '../../daemon/plugin-api.js';

/** A file or directory of a plugin: where it lives, and its copy inside the checkpoint (null: absent at the save). */
export interface CopiedPath {
  path: string;
  copy: string | null;
}

export interface ManifestPlugin {
  tables: string[];
  kept: string[];
  kept_reason: string | null;
  schema_version: number | null;
  files: Record<string, CopiedPath>;
  dirs: Record<string, CopiedPath>;
  /** Captured by the plugin itself (name → copy inside the checkpoint); null when it keeps nothing outside its files. */
  external: Record<string, string> | null;
  entities: Record<string, FullStateEntity>;
}

export interface Manifest {
  format: 1;
  /** AGENTD_HOME at the save: paths under it are moved along when the home moves or is forked. */
  home: string;
  /** The copy of agentd.db, inside the checkpoint. */
  db: string;
  saved_at: number;
  plugins: Record<string, ManifestPlugin>;
  undeclared: Record<string, string[]>;
  bytes: number;
}

/** A plugin that a full restore stops, rolls back and starts again. */
export function rolledBack(p: ManifestPlugin): boolean {
  return (
    p.tables.length > 0 || Object.keys(p.files).length > 0 || Object.keys(p.dirs).length > 0 || p.external !== null
  );
}

/** A path recorded under the saving home, moved to `home` (a moved or forked home); others unchanged. */
export function rebase(p: string, savedHome: string, home: string): string {
  const rel = path.relative(savedHome, p);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return p;
  return path.join(home, rel);
}

/** Whether `p` lies inside `home`. */
export function inside(p: string, home: string): boolean {
  const rel = path.relative(home, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** What a full restore never rolls back, in words, for the answers. */
export function keptSummary(m: Manifest): Record<string, { tables: string[]; reason: string }> {
  const out: Record<string, { tables: string[]; reason: string }> = {};
  for (const [name, p] of Object.entries(m.plugins))
    if (p.kept.length) out[name] = { tables: p.kept, reason: p.kept_reason ?? 'declared as kept' };
  for (const [name, tables] of Object.entries(m.undeclared))
    out[name] = { tables, reason: 'the plugin declares no full state: copied, never rolled back' };
  return out;
}

export function parseManifest(text: string | null): Manifest | null {
  if (!text) return null;
  try {
    const m = JSON.parse(text) as Manifest;
    return m && m.format === 1 && typeof m.plugins === 'object' ? m : null;
  } catch {
    return null;
  }
}
