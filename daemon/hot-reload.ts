/**
 * Dev mode: watch plugin folders with chokidar and reload a plugin when its files change, state
 * carried across. Changes are debounced so an editor's burst of writes is one reload.
 */
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import type { PluginHost } from './plugin-host.js';

/**
 * Resolves once chokidar has scanned the folders (bounded): a change made after the daemon answers
 * is then always seen. The kernel waits for it before it listens.
 */
export async function watchPlugins(
  host: PluginHost,
  log: Logger,
  debounceMs = 300,
  readyTimeoutMs = 10_000,
): Promise<FSWatcher> {
  const dirs = new Map<string, string>();
  for (const rec of host.records.values()) if (rec.found) dirs.set(rec.found.dir, rec.name);
  const timers = new Map<string, NodeJS.Timeout>();
  const watcher = watch([...dirs.keys()], {
    ignoreInitial: true,
    ignored: (p: string) => p.includes(`${path.sep}node_modules${path.sep}`) || /\.(db|db-wal|db-shm|log)$/.test(p),
    awaitWriteFinish: { stabilityThreshold: 100, pollInterval: 50 },
  });
  watcher.on('all', (_event, file) => {
    const dir = [...dirs.keys()].find((d) => file === d || file.startsWith(d + path.sep));
    if (!dir) return;
    const name = dirs.get(dir)!;
    clearTimeout(timers.get(name));
    timers.set(
      name,
      setTimeout(() => {
        timers.delete(name);
        host.reload(name).then(
          (rec) => log.info({ plugin: name, status: rec.status, file }, 'hot reload'),
          (err: Error) => log.warn({ plugin: name, err: err.message, file }, 'hot reload refused'),
        );
      }, debounceMs),
    );
  });
  watcher.on('error', (err) => log.warn({ err }, 'plugin watcher error'));
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      log.warn(
        { timeout_ms: readyTimeoutMs },
        'plugin watcher not ready in time; changes made meanwhile may be missed',
      );
      resolve();
    }, readyTimeoutMs);
    watcher.once('ready', () => (clearTimeout(t), resolve()));
  });
  return watcher;
}
