/**
 * Poll the daemon for what the stream does not carry: health every second, and each present
 * plugin's status event every two (sandbox: four) seconds. One state update per round, so a round is one render.
 * A plugin that is not loaded is `absent` (its panel stays empty); UNKNOWN_EVENT and UNAVAILABLE
 * are answers, not failures.
 */
import { useEffect, useState } from 'react';
import type { EventClient } from '../../../client/index.js';
import { isDaemonError } from '../../../client/index.js';
import type { EventData, EventMap, EventResponse } from '../../../client/event-types.js';
import type { FrameClock } from '../frame-clock.js';

export interface Probe<T = Record<string, unknown>> {
  data?: T;
  /** The plugin is not loaded (or does not answer this event). */
  absent?: boolean;
  /** Why the last call failed (UNAVAILABLE: a backend is down). */
  error?: { code: string; message: string };
  /** Unix seconds of the last answer. */
  at?: number;
}

export interface PluginHealth {
  status: string;
  reason?: string | null;
  details?: Record<string, unknown>;
}

export interface Health {
  status: string;
  pid?: number;
  version?: string;
  uptime_s?: number;
  plugins?: Record<string, PluginHealth>;
  connections?: number;
  subscribers?: number;
  events?: { seq?: number; per_s?: number };
  requests?: number;
  memory?: { rss_mb?: number; heap_mb?: number };
}

/** The plugin-owned probes: plugin name → the status event its panel shows. */
export const PLUGIN_PROBES = {
  agent: 'agent:list',
  completion: 'completion:status',
  budget: 'budget:status',
  sandbox: 'sandbox:status',
  kg: 'kg:stats',
} as const;

/** What each probe asks: the agents panel lists live agents only (terminated ones leave it). */
const PROBE_DATA: { [N in keyof typeof PLUGIN_PROBES]?: EventData<(typeof PLUGIN_PROBES)[N]> } = {
  agent: { status: 'live' },
};

/** Every how many rounds each probe runs (sandbox:status asks the Docker engine: less often). */
const EVERY: Record<keyof typeof PLUGIN_PROBES, number> = { agent: 2, completion: 2, budget: 2, sandbox: 4, kg: 2 };

export type ProbeName = keyof typeof PLUGIN_PROBES;

export interface DaemonSnapshot {
  health: Probe<Health>;
  plugins: Record<ProbeName, Probe>;
}

const EMPTY: DaemonSnapshot = {
  health: {},
  plugins: { agent: {}, completion: {}, budget: {}, sandbox: {}, kg: {} },
};

async function probe<E extends keyof EventMap>(
  client: EventClient,
  event: E,
  request?: EventData<E>,
): Promise<Probe<EventResponse<E>>> {
  try {
    const data = await client.request(event, request, { timeoutMs: 3000 });
    return { data, at: Date.now() / 1000 };
  } catch (e) {
    const code = isDaemonError(e) ? e.code : 'ERROR';
    if (code === 'UNKNOWN_EVENT') return { absent: true };
    return { error: { code, message: (e as Error).message } };
  }
}

/** A failed probe keeps the last good data on screen, marked with why it is stale. */
const keepLast = <T>(next: Probe<T>, previous: Probe<T>): Probe<T> =>
  next.error ? { ...previous, error: next.error } : next;

/** Poll every `intervalMs`; answers are committed on the frame clock's next tick. */
export function useDaemonPoll(client: EventClient, clock: FrameClock, intervalMs = 1000): DaemonSnapshot {
  const [snap, setSnap] = useState<DaemonSnapshot>(EMPTY);
  useEffect(() => {
    let disposed = false;
    let ready: DaemonSnapshot | null = null;
    const stopClock = clock.add(() => {
      if (ready) setSnap(ready);
      ready = null;
    });
    let round = 0;
    let last = EMPTY;
    let timer: NodeJS.Timeout | undefined;
    const run = async (): Promise<void> => {
      const health = keepLast<Health>(await probe(client, 'system:health'), last.health);
      const plugins = { ...last.plugins };
      // Plugin status every few rounds (all at once on the first).
      const due = (Object.keys(PLUGIN_PROBES) as ProbeName[]).filter((name) => round % EVERY[name] === 0);
      if (due.length) {
        const loaded = health.data?.plugins;
        await Promise.all(
          due.map(async (name) => {
            if (loaded && !(name in loaded)) {
              plugins[name] = { absent: true };
              return;
            }
            plugins[name] = keepLast<Record<string, unknown>>(
              await probe(client, PLUGIN_PROBES[name], PROBE_DATA[name]),
              last.plugins[name],
            );
          }),
        );
      }
      round++;
      if (disposed) return;
      last = { health, plugins };
      ready = last;
    };
    const loop = (): void => {
      void run().finally(() => {
        if (!disposed) timer = setTimeout(loop, intervalMs);
      });
    };
    loop();
    return () => {
      disposed = true;
      clearTimeout(timer);
      stopClock();
    };
  }, [client, clock, intervalMs]);
  return snap;
}
