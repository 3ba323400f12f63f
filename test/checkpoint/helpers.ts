/**
 * Shared by the checkpoint, shutdown and durability suites: a daemon configuration that loads only
 * the checkpoint plugin and the test fixture plugins (the other repository plugins are disabled so
 * these tests depend on nobody's work in progress), and small helpers around events and the db.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import YAML from 'yaml';
import type { EventClient } from '../../client/event-client.js';
import type { EventFrame } from '../../client/protocol.js';
import { ROOT, startDaemon as startRaw, type DaemonHandle, type DaemonOptions } from '../helpers/daemon-process.js';

/** startDaemon with a ready timeout for a loaded machine (six builds share two cores). */
export function startDaemon(opts: DaemonOptions = {}): Promise<DaemonHandle> {
  return startRaw({ readyTimeoutMs: 90_000, ...opts });
}

export const FIXTURE_PLUGINS = path.join(ROOT, 'test', 'checkpoint', 'fixture-plugins');

/** Every repository plugin except those named (and checkpoint, which stays). */
export function otherPlugins(keep: string[] = []): string[] {
  return fs
    .readdirSync(path.join(ROOT, 'plugins'), { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name !== 'checkpoint' && !keep.includes(e.name))
    .map((e) => e.name);
}

export interface ConfigOptions {
  checkpoint?: Record<string, unknown>;
  daemon?: Record<string, unknown>;
  /** Repository plugins to keep enabled besides checkpoint. */
  keep?: string[];
  /** Fixture plugins to disable. */
  disableFixtures?: string[];
  extra?: Record<string, unknown>;
}

export function testConfig(o: ConfigOptions = {}): string {
  return YAML.stringify({
    daemon: {
      plugin_dirs: [FIXTURE_PLUGINS],
      disabled_plugins: [...otherPlugins(o.keep), ...(o.disableFixtures ?? [])],
      log_level: 'info',
      ...o.daemon,
    },
    checkpoint: { interval_ms: 0, ...o.checkpoint },
    ...o.extra,
  });
}

/** Collect every event matching the patterns into an array, from now on. */
export async function record(client: EventClient, patterns: string[]): Promise<EventFrame[]> {
  const seen: EventFrame[] = [];
  await client.subscribe(patterns, (ev) => void seen.push(ev));
  return seen;
}

export async function waitFor<T>(
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Open a stopped (or killed) daemon's agentd.db directly. */
export function openDb(home: string): Database.Database {
  return new Database(path.join(home, 'db', 'agentd.db'));
}

export async function expectCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { code?: string }).code ?? `no code: ${(e as Error).message}`;
  }
  return 'no error';
}
