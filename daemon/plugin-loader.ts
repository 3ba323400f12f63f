/**
 * Plugin discovery: scan `plugins/<name>/index.ts` (and extra directories from config), import each
 * definition and check its shape. Importing a plugin has no side effects, so this is also what the
 * catalog generator uses.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { EVENT_NAME_RE } from '../client/protocol.js';
import type { PluginReasonCode } from '../client/plugin-status.js';
import type { AnyPluginDef } from './plugin-api.js';
import { compiledTwin } from './build.js';
import { ROOT } from './config.js';
import { byCodePoint } from './text-order.js';
import { formatIssues } from '../client/issues.js';

const RUNNING_COMPILED = import.meta.url.endsWith('.js');

/** The TypeScript loader, only for what has no transpiled twin (hot reload, extra plugin dirs): it costs ~100 ms to load. */
async function tsImport(file: string): Promise<unknown> {
  const api = await import('tsx/esm/api');
  return api.tsImport(file, import.meta.url);
}

/** Why a plugin could not be loaded or started: a code to branch on, and the text for people. */
export interface PluginFailure {
  code: PluginReasonCode;
  reason: string;
}

/** A plugin that could not be imported or whose definition is not valid. */
export class PluginLoadError extends Error {
  constructor(
    readonly code: 'LOAD_FAILED' | 'INVALID_DEFINITION',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PluginLoadError';
  }
}

export interface FoundPlugin {
  /** The folder name; the plugin's `name` must match it. */
  dirName: string;
  dir: string;
  file: string;
}

const NAME_RE = /^[a-z][a-z0-9_]*$/;

const eventDefShape = z
  .object({
    summary: z.string().min(1, 'every event needs a summary'),
    schema: z.custom<z.ZodType>(
      (v) => typeof v === 'object' && v !== null && typeof (v as { safeParse?: unknown }).safeParse === 'function',
      'schema must be a zod schema',
    ),
    handler: z.custom<(...a: unknown[]) => unknown>((v) => typeof v === 'function', 'handler must be a function'),
  })
  .passthrough();

const pluginDefShape = z
  .object({
    name: z.string().regex(NAME_RE, 'name must be lowercase letters, digits, underscores'),
    version: z.number().int().optional(),
    namespaces: z.array(z.string().regex(NAME_RE, 'namespace must be lowercase letters, digits, underscores')).min(1),
    dependsOn: z.array(z.string()).optional(),
    optionalDependsOn: z.array(z.string()).optional(),
    events: z.record(z.string().regex(EVENT_NAME_RE, 'event names are namespace:action'), eventDefShape).optional(),
    subscriptions: z
      .record(
        z.string(),
        z.custom((v) => typeof v === 'function', 'listener must be a function'),
      )
      .optional(),
    start: z.custom((v) => typeof v === 'function').optional(),
    stop: z.custom((v) => typeof v === 'function').optional(),
    snapshot: z.custom((v) => typeof v === 'function').optional(),
    restore: z.custom((v) => typeof v === 'function').optional(),
  })
  .passthrough();

/** Every plugin folder under the given roots. A later root's folder of the same name is reported, not loaded. */
export function findPlugins(roots: string[]): { found: FoundPlugin[]; errors: Array<{ dir: string; reason: string }> } {
  const found: FoundPlugin[] = [];
  const errors: Array<{ dir: string; reason: string }> = [];
  const seen = new Set<string>();
  for (const root of roots) {
    if (!fs.existsSync(root)) {
      errors.push({ dir: root, reason: 'plugin directory does not exist' });
      continue;
    }
    for (const entry of fs.readdirSync(root, { withFileTypes: true }).sort((a, b) => byCodePoint(a.name, b.name))) {
      if (!entry.isDirectory() || entry.name.startsWith('.') || entry.name.startsWith('_')) continue;
      const dir = path.join(root, entry.name);
      const file = ['index.ts', 'index.js', 'index.mjs'].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
      if (!file) continue;
      if (seen.has(entry.name)) {
        errors.push({ dir, reason: `a plugin folder named "${entry.name}" was already found earlier` });
        continue;
      }
      seen.add(entry.name);
      found.push({ dirName: entry.name, dir, file });
    }
  }
  return { found, errors };
}

/**
 * Import a plugin's definition. `fresh` loads it in a new module namespace (hot reload), so edits
 * to any of its modules take effect.
 */
export async function importPlugin(p: FoundPlugin, fresh = false): Promise<AnyPluginDef> {
  let mod: Record<string, unknown>;
  try {
    if (fresh) mod = (await tsImport(p.file)) as Record<string, unknown>;
    else if (RUNNING_COMPILED && /\.tsx?$/.test(p.file)) {
      // From the build: the transpiled twin when there is one, else the TypeScript loader (extra plugin dirs).
      const twin = compiledTwin(ROOT, p.file);
      mod = (twin ? await import(pathToFileURL(twin).href) : await tsImport(p.file)) as Record<string, unknown>;
    } else mod = (await import(pathToFileURL(p.file).href)) as Record<string, unknown>;
  } catch (e) {
    throw new PluginLoadError('LOAD_FAILED', `load failed: ${(e as Error).message}`, { cause: e });
  }
  let def: unknown = mod.default;
  // A fresh namespace can wrap the ES module once more.
  if (def && typeof def === 'object' && !('namespaces' in def) && 'default' in def)
    def = (def as { default: unknown }).default;
  return checkPluginShape(def, p.dirName);
}

export function checkPluginShape(def: unknown, dirName: string): AnyPluginDef {
  const r = pluginDefShape.safeParse(def);
  if (!r.success) {
    throw new PluginLoadError(
      'INVALID_DEFINITION',
      `invalid plugin definition: ${formatIssues(r.error.issues, { root: '(default export)' })}`,
    );
  }
  const d = def as AnyPluginDef;
  if (d.name !== dirName)
    throw new PluginLoadError('INVALID_DEFINITION', `plugin name "${d.name}" does not match its folder "${dirName}"`);
  for (const ev of Object.keys(d.events ?? {})) {
    const ns = ev.split(':')[0];
    if (!d.namespaces.includes(ns))
      throw new PluginLoadError(
        'INVALID_DEFINITION',
        `event "${ev}" is outside the plugin's namespaces (${d.namespaces.join(', ')})`,
      );
  }
  return d;
}

export interface GraphInput {
  name: string;
  namespaces: string[];
  dependsOn: string[];
  optionalDependsOn: string[];
  early: boolean;
}

/**
 * Check namespace ownership and dependencies, and order the plugins for start. Returns the start
 * order and, for each plugin that cannot start, why.
 */
export function planStart(
  plugins: GraphInput[],
  reservedNamespaces: string[],
): { order: string[]; failed: Map<string, PluginFailure> } {
  const failed = new Map<string, PluginFailure>();
  const owner = new Map<string, string>(reservedNamespaces.map((n) => [n, 'kernel']));
  for (const p of plugins) {
    for (const ns of p.namespaces) {
      const o = owner.get(ns);
      if (o && o !== p.name)
        failed.set(p.name, {
          code: 'NAMESPACE_TAKEN',
          reason: `namespace "${ns}" is already owned by ${o === 'kernel' ? 'the kernel' : `plugin "${o}"`}`,
        });
    }
    if (!failed.has(p.name)) for (const ns of p.namespaces) owner.set(ns, p.name);
  }
  const byName = new Map(plugins.map((p) => [p.name, p]));
  const deps = (p: GraphInput): string[] => [...p.dependsOn, ...p.optionalDependsOn.filter((d) => byName.has(d))];
  for (const p of plugins)
    for (const d of p.dependsOn)
      if (!byName.has(d) && !failed.has(p.name))
        failed.set(p.name, { code: 'DEPENDENCY_MISSING', reason: `depends on "${d}", which is not installed` });

  // Depth-first topological sort; a back edge marks every plugin on the cycle.
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, stack: string[]): void => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = stack.slice(stack.indexOf(name));
      for (const c of cycle)
        failed.set(c, { code: 'DEPENDENCY_CYCLE', reason: `dependency cycle: ${[...cycle, name].join(' → ')}` });
      return;
    }
    state.set(name, 'visiting');
    for (const d of deps(byName.get(name)!)) if (byName.has(d)) visit(d, [...stack, name]);
    state.set(name, 'done');
    order.push(name);
  };
  const sorted = [...plugins].sort((a, b) => Number(b.early) - Number(a.early) || byCodePoint(a.name, b.name));
  for (const p of sorted) visit(p.name, []);
  // Early plugins first, keeping dependency order within each group.
  const early = order.filter((n) => byName.get(n)!.early);
  const rest = order.filter((n) => !byName.get(n)!.early);
  const final = [...early, ...rest];
  // A plugin whose hard dependency failed cannot start either (in order, so it cascades).
  for (const n of final) {
    if (failed.has(n)) continue;
    const bad = byName.get(n)!.dependsOn.find((d) => failed.has(d));
    if (bad)
      failed.set(n, { code: 'DEPENDENCY_FAILED', reason: `dependency "${bad}" failed: ${failed.get(bad)!.reason}` });
  }
  return { order: final, failed };
}
