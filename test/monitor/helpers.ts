/** Shared by the monitor tests: a daemon with the burst fixture plugin, and waiting on screens. */
import path from 'node:path';
import { ROOT, startDaemon, type DaemonHandle, type DaemonOptions } from '../helpers/daemon-process.js';

export const FIXTURE_PLUGINS = path.join(ROOT, 'test', 'monitor', 'fixtures', 'plugins');

/**
 * A daemon with `burst:emit` and without the plugins that need outside services (sandbox wants
 * Docker, completion an API key, agent needs completion): the monitor must show those as empty panels anyway.
 */
export function startMonitorDaemon(opts: DaemonOptions & { subscriberQueue?: number } = {}): Promise<DaemonHandle> {
  const lines = [
    'daemon:',
    `  plugin_dirs: [${JSON.stringify(FIXTURE_PLUGINS)}]`,
    '  disabled_plugins: [sandbox, completion, agent]',
  ];
  if (opts.subscriberQueue) lines.push(`  subscriber_queue: ${opts.subscriberQueue}`);
  // A shared 2-core machine under load can take far longer than the default 15 s to start a daemon.
  return startDaemon({ readyTimeoutMs: 60_000, ...opts, config: opts.config ?? lines.join('\n') + '\n' });
}

/** Poll `read` until `ok` holds; on timeout fail with the last value (the screen) in the message. */
export async function waitUntil<T>(
  read: () => T,
  ok: (v: T) => boolean,
  timeoutMs = 8000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = read();
  while (!ok(v)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last screen:\n${String(v)}`);
    await new Promise((r) => setTimeout(r, 50));
    v = read();
  }
  return v;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Frames carry colour and inverse codes when the test runner forces colour; assertions read the text. */
export const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');
