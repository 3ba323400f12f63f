/**
 * Watching folders of YAML definitions (agent profiles, workflows) so edits are picked up without a
 * restart. chokidar is imported here, off the daemon's start path: a start does not wait for it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FSWatcher } from 'chokidar';
import { loadYamlParser } from './yaml-text.js';

/** The handle `watchYamlDirs` answers; `close()` it with the plugin. */
export type YamlDirWatcher = FSWatcher;

export const isYamlFile = (f: string): boolean => /\.ya?ml$/i.test(f);

/** What the watched folders feed: the text each file was last loaded from, and how to (un)load one. */
export interface YamlDirTarget {
  texts: ReadonlyMap<string, string>;
  load(file: string): void;
  remove(file: string): void;
}

/**
 * Watch `dirs` (not their subfolders) and load or remove each YAML file as it changes. Once the
 * watcher is ready, files changed, added or removed since the caller's first load (seen by neither)
 * are caught up. Resolves null when no folder exists or `closed()` turned true before the watcher was ready.
 */
export async function watchYamlDirs(
  dirs: string[],
  target: YamlDirTarget,
  closed: () => boolean,
): Promise<YamlDirWatcher | null> {
  const existing = dirs.filter((d) => fs.existsSync(d));
  if (existing.length === 0) return null;
  // Edits are texts no build has seen: the watcher's changes need the parser.
  const [{ watch }] = await Promise.all([import('chokidar'), loadYamlParser()]);
  if (closed()) return null;
  const watcher = watch(existing, {
    ignoreInitial: true,
    depth: 0,
    awaitWriteFinish: { stabilityThreshold: 80, pollInterval: 20 },
  });
  watcher.on('all', (ev, file) => {
    if (!isYamlFile(file)) return;
    if (ev === 'unlink') target.remove(file);
    else if (ev === 'add' || ev === 'change') target.load(file);
  });
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  // The caller holds the watcher only once this resolves: a close() meanwhile could not reach it.
  if (closed()) {
    await watcher.close();
    return null;
  }
  catchUp(existing, target);
  return watcher;
}

function catchUp(dirs: string[], target: YamlDirTarget): void {
  const seen = new Set<string>();
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir).sort()) {
      if (!isYamlFile(f)) continue;
      const file = path.join(dir, f);
      seen.add(file);
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      if (target.texts.get(file) !== text) target.load(file);
    }
  }
  for (const file of [...target.texts.keys()]) if (!seen.has(file)) target.remove(file);
}
