/** Shared set-up for the bridge integration tests: daemon configs for a fleet on one nats-server. */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';

export const FIXTURES = path.join(ROOT, 'test', 'bridge', 'fixtures');
/** Other engineers' plugins are not needed here; keep each daemon small. */
export const OTHERS = ['completion', 'budget', 'sandbox', 'kg', 'agent', 'checkpoint', 'gateway'];

export interface NodeOptions {
  node: string;
  url: string;
  worker: boolean;
  extra?: Record<string, unknown>;
  env?: Record<string, string>;
  home?: string;
  /** Plugin folders besides the fixtures. */
  pluginDirs?: string[];
  /** What node runs (default the sources under tsx; benchmarks pass the bundled daemon's). */
  nodeArgs?: string[];
}

export function nodeConfig(o: NodeOptions): string {
  return JSON.stringify({
    daemon: {
      plugin_dirs: [FIXTURES, ...(o.pluginDirs ?? [])],
      disabled_plugins: o.worker ? OTHERS : [...OTHERS, 'testwork'],
      shutdown_timeout_ms: 5000,
    },
    bridge: {
      url: o.url,
      node: o.node,
      publish: ['testwork:*'],
      serve: o.worker ? ['testwork'] : [],
      durable: ['testwork:exec'],
      heartbeat_ms: 300,
      ack_wait_ms: 1500,
      ...o.extra,
    },
  });
}

export function startNode(o: NodeOptions): Promise<DaemonHandle> {
  const home = o.home ?? tempHome(`agentd-bridge-${o.node}-`);
  return startDaemon({
    home,
    config: nodeConfig(o),
    env: { AGENTD_BRIDGE_NODE: o.node, ...o.env },
    readyTimeoutMs: 30_000,
    ...(o.nodeArgs ? { nodeArgs: o.nodeArgs } : {}),
  });
}

/** Stop daemons (those still running) and remove their homes. */
export async function stopAndClean(daemons: Array<DaemonHandle | null | undefined>): Promise<void> {
  const live = daemons.filter((d): d is DaemonHandle => Boolean(d));
  await Promise.all(
    live.map((d) => (d.proc.exitCode === null && d.proc.signalCode === null ? d.stop() : Promise.resolve(null))),
  );
  for (const d of live) fs.rmSync(d.home, { recursive: true, force: true });
}

/** Poll until `check` returns a truthy value, or fail after `ms`. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export function readLog(file: string): string[] {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}
